from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = "Blinded constitution surveys"

    def ready(self) -> None:
        # The study Data page and its API offer the survey-answers file; the export
        # itself lives here, with the data it reads (annotations must not import surveys).
        from annotations.exports import SURVEY_EXPORTS, ExportKind
        from surveys.exports import answers_csv

        SURVEY_EXPORTS["csv"] = ExportKind(answers_csv, "text/csv; charset=utf-8", "csv")

        from annotations.services import study_guard_register
        from surveys.blinding import study_text_guard

        study_guard_register(study_text_guard)
