from django.apps import AppConfig


class ConstitutionsConfig(AppConfig):
    name = "gcai.constitutions"
    label = "constitutions"
    verbose_name = "Constitutions, runs and evaluations"
