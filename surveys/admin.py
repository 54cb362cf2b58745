from django.contrib import admin

from annotations.access import StudyScopedAdminMixin
from surveys.models import Answer, Survey, SurveyQuestion, SurveyResponse, SurveyStatus

# What participants see or answer: fixed once a survey has been opened, as on the
# survey pages (the blinding check runs when a survey opens, not on admin saves).
PARTICIPANT_FIELDS = (
    "instructions",
    "consent_text",
    "constitution_a",
    "constitution_b",
    "allowed_choices",
    "rate_principles",
)


def _opened(survey: Survey | None) -> bool:
    return survey is not None and survey.status != SurveyStatus.DRAFT


class SurveyQuestionInline(admin.TabularInline):
    model = SurveyQuestion
    extra = 0

    def has_add_permission(self, request, obj=None):
        return not _opened(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _opened(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _opened(obj) and super().has_delete_permission(request, obj)


@admin.register(Survey)
class SurveyAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "study", "status", "created_at")
    inlines = [SurveyQuestionInline]

    def get_readonly_fields(self, request, obj=None):
        opened = PARTICIPANT_FIELDS if _opened(obj) else ()
        return (*super().get_readonly_fields(request, obj), *opened)


@admin.register(SurveyResponse)
class SurveyResponseAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "survey__study"
    list_display = ("id", "survey", "status", "a_on_left", "started_at")


@admin.register(Answer)
class AnswerAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "response__survey__study"
    list_display = ("id", "response", "question", "choice")
