"""Upload size limits enforced before a byte of the body is read.

The import services refuse files above ``GCAI_IMPORT_MAX_BYTES``, but by then Django
has already written the whole upload to a temporary file (and the CSRF check parses
multipart bodies before any view runs). A request whose declared size
(``Content-Length``) is above the largest file the platform accepts, plus room for the
form's other fields, is therefore refused here, first in the middleware chain, with
413 and a message naming the limit; the body is never read.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from annotations.importers.readers import too_large_message

# Multipart framing and the form's other fields (dataset name, mapping, token...).
FORM_OVERHEAD_BYTES = 1024 * 1024


def request_size_limit() -> int:
    """The largest request body accepted: the import cap plus the form's overhead."""
    return int(settings.GCAI_IMPORT_MAX_BYTES) + FORM_OVERHEAD_BYTES


def declared_size(request) -> int | None:
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    return size if size > 0 else None


class RequestSizeLimitMiddleware:
    """413 for a request that declares a body larger than any accepted upload."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        size = declared_size(request)
        if size is not None and size > request_size_limit():
            return too_large_response(request, size)
        return self.get_response(request)


def too_large_response(request, size: int) -> HttpResponse:
    message = too_large_message(size, int(settings.GCAI_IMPORT_MAX_BYTES))
    message = f"Nothing was read: {message}."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message, "code": "too_large"}, status=413)
    else:
        response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
    # The client is still sending a body nobody will read: do not keep the connection.
    response["Connection"] = "close"
    return response
