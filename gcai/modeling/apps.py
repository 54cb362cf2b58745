from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "gcai.modeling"
    label = "modeling"
    verbose_name = "From constitution to model"
