from django.urls import include, path

from annotations import views

urlpatterns = [
    path("", views.home, name="home"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/<id:study_id>/", views.study_detail, name="study_detail"),
    path("studies/<id:study_id>/edit/", views.study_edit, name="study_edit"),
    path("studies/<id:study_id>/members/", views.membership_add, name="membership_add"),
    path("", include("annotations.io_urls")),
    path("", include("annotations.annotate_urls")),
]
