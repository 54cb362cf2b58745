"""Error pages for each audience, used as Django's handler400/403/404/500.

Participants (the public study and survey links) get a neutral page without the
platform's name or any researcher navigation, so a blinded survey stays blinded even
when something fails; API clients get JSON; researchers and annotators get the app's
page with a way back. The 500 page is rendered without the request's context (the
database or session may be what failed).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

PARTICIPANT_PREFIXES = ("/p/", "/s/", "/api/s/", "/api/participate/")

MESSAGES: dict[int | str, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood. Please go back and try again."),
    403: (
        "Not allowed",
        "You do not have access to this page. If you followed a link you were given, "
        "open it again from where you received it.",
    ),
    404: (
        "Page not found",
        "There is nothing at this address. Please check the link, or open the one you were "
        "given again.",
    ),
    "csrf": (
        "Please try again",
        "This form was open too long or cookies are blocked, so it could not be sent. "
        "Go back, reload the page and send it again (allow cookies for this site).",
    ),
    500: (
        "Something went wrong",
        "An error on our side stopped this page. Nothing you entered before this page was "
        "lost; please try again in a few minutes.",
    ),
}


def audience(path: str) -> str:
    """Who sees an error at ``path``: "participant", "api" or "member"."""
    if path.startswith(PARTICIPANT_PREFIXES):
        return "participant"
    if path.startswith("/api/"):
        return "api"
    return "member"


def _respond(
    request: HttpRequest, status: int, *, with_context: bool = True, key: int | str | None = None
) -> HttpResponse:
    title, message = MESSAGES[key if key is not None else status]
    who = audience(request.path)
    if who == "api":
        return JsonResponse(
            {"detail": message, "code": title.lower().replace(" ", "_")}, status=status
        )
    template = loader.get_template(f"errors/{who}.html")
    context = {"status": status, "title": title, "message": message}
    html = template.render(context, request if with_context else None)
    return HttpResponse(html, status=status)


def bad_request(request, exception=None):
    return _respond(request, 400)


def permission_denied(request, exception=None):
    return _respond(request, 403)


def page_not_found(request, exception=None):
    return _respond(request, 404)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a stale or missing token, explained for each audience."""
    return _respond(request, 403, key="csrf")


def server_error(request):
    return _respond(request, 500, with_context=False)
