from django.urls import include, path

from annotations import api

urlpatterns = [
    path("studies/", api.StudyListCreateAPI.as_view(), name="api_studies"),
    path("studies/<id:study_id>/", api.StudyDetailAPI.as_view(), name="api_study_detail"),
    path("", include("annotations.io_api_urls")),
    path("", include("annotations.annotate_api_urls")),
]
