from django.contrib import admin

from annotations.access import StudyScopedAdminMixin
from surveys.models import Answer, Survey, SurveyQuestion, SurveyResponse


class SurveyQuestionInline(admin.TabularInline):
    model = SurveyQuestion
    extra = 0


@admin.register(Survey)
class SurveyAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "study", "status", "created_at")
    inlines = [SurveyQuestionInline]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "survey__study"
    list_display = ("id", "survey", "status", "a_on_left", "started_at")


@admin.register(Answer)
class AnswerAdmin(StudyScopedAdminMixin, admin.ModelAdmin):
    study_field = "response__survey__study"
    list_display = ("id", "response", "question", "choice")
