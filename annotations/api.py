"""REST API for studies. Study-scoped endpoints of the other apps resolve their study
through ``StudyScopedAPIView.get_study`` so ownership is checked in one place."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import selectors, services
from annotations.access import IsStudyResearcher, study_for
from annotations.serializers import StudyInputSerializer, StudyOutputSerializer
from gcai.dbid import MAX_DB_ID


class DatabaseIdField(serializers.IntegerField):
    """An object id in a request body: 1 .. 2**63-1, so a too-long number is a 400
    naming the field instead of a database error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_DB_ID)
        super().__init__(**kwargs)


class StudyScopedAPIView(APIView):
    """Base for endpoints under /api/studies/<study_id>/...: strangers get 404."""

    permission_classes = [IsStudyResearcher]
    study_role: str | None = "researcher"

    def get_study(self):
        if not hasattr(self, "_study"):
            self._study = study_for(
                self.request.user, self.kwargs["study_id"], role=self.study_role
            )
        return self._study


class StudyListCreateAPI(generics.ListAPIView):
    serializer_class = StudyOutputSerializer

    def get_queryset(self):
        return selectors.study_list_for_user(user=self.request.user)

    @extend_schema(request=StudyInputSerializer, responses={201: StudyOutputSerializer})
    def post(self, request):
        data = StudyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        study = services.study_create(user=request.user, **data.validated_data)
        return Response(StudyOutputSerializer(study).data, status=status.HTTP_201_CREATED)


class StudyDetailAPI(StudyScopedAPIView):
    @extend_schema(responses=StudyOutputSerializer)
    def get(self, request, study_id: int):
        study = self.get_study()
        payload = StudyOutputSerializer(study).data
        payload["overview"] = selectors.study_overview(study=study)
        return Response(payload)
