"""The page frame: login, logout, the root URL, the navigation and who may open each page."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_root_sends_a_visitor_to_log_in_first(client):
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == f"{reverse('login')}?next={reverse('snapshots:list')}"


def test_root_is_the_snapshot_list(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("snapshots:list")


def test_login_page_logs_in_and_goes_to_the_next_page(client, admin_user):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(
        reverse("login"), {"username": "admin", "password": "admin-pass", "next": reverse("snapshots:list")}
    )
    assert response.status_code == 302 and response["Location"] == reverse("snapshots:list")


def test_a_wrong_password_is_a_readable_error(client, admin_user):
    response = client.post(reverse("login"), {"username": "admin", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text


def test_logout_is_a_post_and_returns_to_the_login_page(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("snapshots:list")).status_code == 302


def test_nav_shows_the_user_and_admin_only_to_staff(client, make_user, admin_user):
    operator = make_user("operator", "operator")
    client.force_login(operator)
    page = client.get(reverse("snapshots:list")).text
    assert "operator" in page and 'href="/admin/"' not in page
    assert 'href="/static/squirrel/squirrel.css"' in page
    assert '<script type="module" src="/static/squirrel/live.js">' in page
    client.force_login(admin_user)
    assert 'href="/admin/"' in client.get(reverse("snapshots:list")).text


def test_the_nav_api_link_opens_the_docs_and_the_api_root_lists_the_endpoints(client, viewer):
    client.force_login(viewer)
    assert '<a href="/api/v1/docs/">API</a>' in client.get(reverse("snapshots:list")).text
    root = client.get("/api/v1/")
    assert root.status_code == 200, root.content[:300]
    body = root.json()
    assert body["docs"] == "http://testserver/api/v1/docs/" and body["schema"] == "http://testserver/api/v1/schema/"
    assert body["endpoints"]["snapshots-api:snapshot-list"] == "http://testserver/api/v1/snapshots/"
    assert body["endpoints"]["jobs-api:job-list"] == "http://testserver/api/v1/jobs/"
    assert not any("{" in url or "<" in url for url in body["endpoints"].values())


# Every page that reads, with ids that need not exist: the permission is checked before the lookup.
READ_PAGES = [
    ("snapshots:list", []),
    ("snapshots:detail", [1]),
    ("snapshots:compare", []),
    ("snapshots:drift", []),
    ("snapshots:restore_preview", [1]),
    ("snapshots:restore", [1]),
    ("snapshots:restore_list", []),
    ("pvs:live", []),
    ("jobs:list", []),
    ("jobs:detail", [1]),
]


@pytest.mark.parametrize("name, args", READ_PAGES)
def test_pages_refuse_a_user_without_a_role(client, make_user, name, args):
    client.force_login(make_user(None))
    assert client.get(reverse(name, args=args)).status_code == 403


@pytest.mark.parametrize("name, args", READ_PAGES)
def test_pages_send_anonymous_visitors_to_the_login_page(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name, args", READ_PAGES)
def test_viewers_may_open_every_page(client, viewer, name, args):
    client.force_login(viewer)
    assert client.get(reverse(name, args=args)).status_code in (200, 404)


@pytest.mark.parametrize(
    "name, args, active",
    [
        ("snapshots:list", [], "Snapshots"),
        ("snapshots:restore_list", [], "Restores"),
        ("jobs:list", [], "Jobs"),
    ],
)
def test_the_nav_links_the_lists_and_marks_the_current_one(client, viewer, name, args, active):
    client.force_login(viewer)
    page = client.get(reverse(name, args=args)).text
    assert '<a href="/restores/"' in page and '<a href="/jobs/"' in page
    assert f'class="active">{active}</a>' in page and page.count('class="active"') == 1
