"""Researcher pages for runs and constitutions; every route is under its study."""

from django.urls import include, path

from gcai.constitutions import methods_views, views

urlpatterns = [
    path("methods/", methods_views.methods, name="methods"),
    path(
        "studies/<int:study_id>/constitutions/",
        views.study_constitutions,
        name="study_constitutions",
    ),
    path("studies/<int:study_id>/runs/new/", views.run_create, name="run_create"),
    path(
        "studies/<int:study_id>/runs/compare/new/",
        views.runs_create_comparison,
        name="runs_create_comparison",
    ),
    path("studies/<int:study_id>/runs/compare/", views.run_compare, name="run_compare"),
    path("studies/<int:study_id>/runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("studies/<int:study_id>/runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("studies/<int:study_id>/runs/<int:run_id>/resume/", views.run_resume, name="run_resume"),
    path(
        "studies/<int:study_id>/runs/<int:run_id>/export.json",
        views.run_export,
        name="run_export",
    ),
    path(
        "studies/<int:study_id>/runs/<int:run_id>/stages/<slug:stage>/",
        views.run_stage,
        name="run_stage",
    ),
    path(
        "studies/<int:study_id>/runs/<int:run_id>/stages/<slug:stage>/export.json",
        views.run_stage_export,
        name="run_stage_export",
    ),
    path(
        "studies/<int:study_id>/constitutions/<int:constitution_id>/",
        views.constitution_detail,
        name="constitution_detail",
    ),
    path(
        "studies/<int:study_id>/constitutions/<int:constitution_id>/edit/",
        views.constitution_edit,
        name="constitution_edit",
    ),
    path(
        "studies/<int:study_id>/constitutions/<int:constitution_id>/publish/",
        views.constitution_publish,
        name="constitution_publish",
    ),
    path("", include("gcai.constitutions.evaluation_urls")),
]
