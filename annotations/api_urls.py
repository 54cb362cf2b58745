from django.urls import include, path

from annotations import api, api_attributes

urlpatterns = [
    path("studies/", api.StudyListCreateAPI.as_view(), name="api_studies"),
    path("studies/<id:study_id>/", api.StudyDetailAPI.as_view(), name="api_study_detail"),
    path(
        "studies/<id:study_id>/attributes/",
        api_attributes.AttributesAPI.as_view(),
        name="api_attributes",
    ),
    path(
        "studies/<id:study_id>/attributes/prolific/",
        api_attributes.AttributesProlificImportAPI.as_view(),
        name="api_attributes_prolific",
    ),
    path("", include("annotations.io_api_urls")),
    path("", include("annotations.annotate_api_urls")),
]
