from django.urls import include, path

from annotations import views, views_attributes, views_invitations

urlpatterns = [
    path("", views.home, name="home"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/<id:study_id>/", views.study_detail, name="study_detail"),
    path("studies/<id:study_id>/edit/", views.study_edit, name="study_edit"),
    path(
        "studies/<id:study_id>/invitations/",
        views_invitations.invitation_create_view,
        name="invitation_create",
    ),
    path(
        "studies/<id:study_id>/invitations/<id:invitation_id>/revoke/",
        views_invitations.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path(
        "invitations/<str:token>/",
        views_invitations.invitation_accept_view,
        name="invitation_accept",
    ),
    path(
        "studies/<id:study_id>/attributes/",
        views_attributes.study_attributes,
        name="study_attributes",
    ),
    path(
        "studies/<id:study_id>/attributes/export.csv",
        views_attributes.study_attributes_export,
        name="study_attributes_export",
    ),
    path("", include("annotations.io_urls")),
    path("", include("annotations.annotate_urls")),
]
