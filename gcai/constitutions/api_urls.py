"""API routes for runs and constitutions, all under /api/studies/<study_id>/."""

from django.urls import include, path

from gcai.constitutions import api, consensus_api

RUN = "studies/<id:study_id>/runs/<id:run_id>"
CONSTITUTION = "studies/<id:study_id>/constitutions/<id:constitution_id>"

urlpatterns = [
    path("studies/<id:study_id>/runs/", api.RunListCreateAPI.as_view(), name="api_runs"),
    path(
        "studies/<id:study_id>/runs/comparison/",
        api.RunComparisonCreateAPI.as_view(),
        name="api_runs_comparison",
    ),
    path(f"{RUN}/", api.RunDetailAPI.as_view(), name="api_run_detail"),
    path(f"{RUN}/status/", api.RunStatusAPI.as_view(), name="api_run_status"),
    path(f"{RUN}/cancel/", api.RunCancelAPI.as_view(), name="api_run_cancel"),
    path(f"{RUN}/resume/", api.RunResumeAPI.as_view(), name="api_run_resume"),
    path(f"{RUN}/artifacts/", api.RunArtifactListAPI.as_view(), name="api_run_artifacts"),
    path(
        f"{RUN}/artifacts/<slug:stage>/",
        api.RunArtifactDetailAPI.as_view(),
        name="api_run_artifact_detail",
    ),
    path(f"{RUN}/consensus/", consensus_api.RunConsensusAPI.as_view(), name="api_run_consensus"),
    path(
        "studies/<id:study_id>/constitutions/",
        api.ConstitutionListAPI.as_view(),
        name="api_constitutions",
    ),
    path(f"{CONSTITUTION}/", api.ConstitutionDetailAPI.as_view(), name="api_constitution_detail"),
    path(
        f"{CONSTITUTION}/consensus/",
        consensus_api.ConstitutionConsensusAPI.as_view(),
        name="api_constitution_consensus",
    ),
    path(
        f"{CONSTITUTION}/versions/",
        api.ConstitutionVersionCreateAPI.as_view(),
        name="api_constitution_new_version",
    ),
    path(
        f"{CONSTITUTION}/publish/",
        api.ConstitutionPublishAPI.as_view(),
        name="api_constitution_publish",
    ),
    path("", include("gcai.constitutions.evaluation_api_urls")),
]
