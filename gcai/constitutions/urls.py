"""Researcher pages for runs and constitutions; every route is under its study."""

from django.urls import include, path

from gcai.constitutions import methods_views, views

urlpatterns = [
    path("methods/", methods_views.methods, name="methods"),
    path(
        "studies/<id:study_id>/constitutions/",
        views.study_constitutions,
        name="study_constitutions",
    ),
    path("studies/<id:study_id>/runs/new/", views.run_create, name="run_create"),
    path(
        "studies/<id:study_id>/runs/compare/new/",
        views.runs_create_comparison,
        name="runs_create_comparison",
    ),
    path("studies/<id:study_id>/runs/compare/", views.run_compare, name="run_compare"),
    path("studies/<id:study_id>/pairs/<id:pair_id>/", views.pair_detail, name="pair_detail"),
    path("studies/<id:study_id>/runs/<id:run_id>/", views.run_detail, name="run_detail"),
    path("studies/<id:study_id>/runs/<id:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("studies/<id:study_id>/runs/<id:run_id>/resume/", views.run_resume, name="run_resume"),
    path(
        "studies/<id:study_id>/runs/<id:run_id>/export.json",
        views.run_export,
        name="run_export",
    ),
    path(
        "studies/<id:study_id>/runs/<id:run_id>/stages/<slug:stage>/",
        views.run_stage,
        name="run_stage",
    ),
    path(
        "studies/<id:study_id>/runs/<id:run_id>/stages/<slug:stage>/export.json",
        views.run_stage_export,
        name="run_stage_export",
    ),
    path(
        "studies/<id:study_id>/constitutions/<id:constitution_id>/",
        views.constitution_detail,
        name="constitution_detail",
    ),
    path(
        "studies/<id:study_id>/constitutions/<id:constitution_id>/edit/",
        views.constitution_edit,
        name="constitution_edit",
    ),
    path(
        "studies/<id:study_id>/constitutions/<id:constitution_id>/publish/",
        views.constitution_publish,
        name="constitution_publish",
    ),
    path("", include("gcai.constitutions.evaluation_urls")),
]
