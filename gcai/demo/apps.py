from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "gcai.demo"
    label = "demo"
    verbose_name = "Demo study"
