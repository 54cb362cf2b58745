"""The API token endpoint, with failed attempts counted like the login page's.

DRF's ``obtain_auth_token`` authenticates with DRF's request wrapper; django-axes marks
a lockout on the request it is given, so this view hands it the underlying Django
request, which the axes middleware then turns into a 429 response.
"""

from __future__ import annotations

from rest_framework.authtoken.views import ObtainAuthToken


class AuthTokenView(ObtainAuthToken):
    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["request"] = self.request._request
        return context


obtain_auth_token = AuthTokenView.as_view()
