"""The Content-Security-Policy header, and templates that need no exemption from it.

test_csp_browser.py shows chromium reporting no violation on every page; these are the quick checks.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

# No script-src or style-src: default-src 'self' forbids inline scripts and styles.
POLICY = "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
# An inline <script> (one without src) or <style> element, or a style="" or on...="" attribute.
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


@pytest.mark.parametrize("url", ["/accounts/login/", "/snapshots/", "/admin/", "/api/v1/snapshots/"])
def test_pages_the_admin_and_the_api_answer_with_the_policy(client, admin_user, url):
    client.force_login(admin_user)
    assert directives(client.get(url)["Content-Security-Policy"]) == directives(POLICY)


def test_the_api_docs_page_alone_may_show_data_images(client, admin_user):
    client.force_login(admin_user)
    page = client.get("/api/v1/docs/")
    assert directives(page["Content-Security-Policy"]) == {**directives(POLICY), "img-src": "'self' data:"}
    assert not INLINE.search(page.content.decode())


def test_the_api_docs_start_up_script_is_served_as_a_file(client, admin_user):
    client.force_login(admin_user)
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_no_template_has_an_inline_script_style_or_event_handler():
    templates = Path(settings.BASE_DIR) / "templates"
    offending = {
        str(path.relative_to(templates)) for path in templates.rglob("*.html") if INLINE.search(path.read_text())
    }
    assert offending == set()
