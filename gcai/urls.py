from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from gcai import errors, health
from gcai.api_docs import api_docs
from gcai.auth_token import obtain_auth_token

api_patterns = [
    path("", include("annotations.api_urls")),
    path("", include("gcai.constitutions.api_urls")),
    path("", include("gcai.modeling.api_urls")),
    path("", include("gcai.groups.api_urls")),
    path("", include("surveys.api_urls")),
    path("auth/token/", obtain_auth_token, name="api_token"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", api_docs, name="api_docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("api/", include(api_patterns)),
    path("", include("annotations.urls")),
    path("", include("gcai.constitutions.urls")),
    path("", include("gcai.modeling.urls")),
    path("", include("gcai.groups.urls")),
    path("", include("surveys.urls")),
]

# Friendly error pages for each audience (participants, annotators and researchers, API
# clients); never Django's debug pages, which DEBUG=0 switches off.
handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
