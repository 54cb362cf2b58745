"""The API documentation page: Swagger UI from drf-spectacular-sidecar (served locally).

Anonymous visitors are sent to log in first; logged-in users who are not researchers
get the app's refusal page (templates/api_exception.html) rather than a bare 403.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from drf_spectacular.views import SpectacularSwaggerView

_swagger = SpectacularSwaggerView.as_view(url_name="api_schema")


def api_docs(request, *args, **kwargs):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return _swagger(request, *args, **kwargs)
