from django.apps import AppConfig


class ConstitutionsConfig(AppConfig):
    name = "gcai.constitutions"
    label = "constitutions"
    verbose_name = "Constitutions, runs and evaluations"

    def ready(self) -> None:
        # The study Data page, its API and export_data offer constitution files; the
        # exports live here, with the data they read (annotations must not import us).
        from annotations.exports import CONSTITUTION_EXPORTS
        from gcai.constitutions.exports import EXPORTS

        CONSTITUTION_EXPORTS.update(EXPORTS)
