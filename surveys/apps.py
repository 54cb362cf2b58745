from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = "Blinded constitution surveys"

    def ready(self) -> None:
        from annotations.services import study_guard_register
        from surveys.blinding import study_text_guard

        study_guard_register(study_text_guard)
