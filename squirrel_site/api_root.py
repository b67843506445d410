"""GET /api/v1/: the API root, listing where the docs, the schema and every collection are."""

from functools import cache

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from squirrel_site.permissions import HasRole


class ApiRootSerializer(serializers.Serializer):
    docs = serializers.URLField(help_text="The interactive docs (Swagger UI), for people.")
    schema = serializers.URLField(help_text="The OpenAPI schema.")
    endpoints = serializers.DictField(
        child=serializers.URLField(),
        help_text="Every operation whose URL takes no id, by its URL name (e.g. snapshots-api:snapshot-list).",
    )


@cache
def _endpoint_paths() -> dict[str, str]:
    """{URL name: path} of every named route under /api/v1/ without a path parameter, but this one."""
    found = {}

    def walk(patterns, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace)
            elif isinstance(pattern, URLPattern) and pattern.name and pattern.name != "api-root":
                if not pattern.pattern.converters and "(?P<" not in str(pattern.pattern):
                    found[f"{namespace}{pattern.name}"] = reverse(f"{namespace}{pattern.name}")

    walk(get_resolver("squirrel_site.api_urls").url_patterns, "")
    return dict(sorted(found.items()))


class ApiRootView(APIView):
    """Where everything is: the docs page, the schema and each collection (any role)."""

    permission_classes = [HasRole]

    @extend_schema(
        operation_id="api_root",
        summary="The API root",
        description="Links to the interactive docs, the OpenAPI schema and every operation whose URL takes no id.",
        responses={200: ApiRootSerializer},
    )
    def get(self, request):
        paths = _endpoint_paths()
        return Response(
            {
                "docs": request.build_absolute_uri(reverse("api-docs")),
                "schema": request.build_absolute_uri(reverse("api-schema")),
                "endpoints": {name: request.build_absolute_uri(path) for name, path in paths.items()},
            }
        )
