from django.apps import AppConfig
from django.urls import register_converter


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Studies and human input"

    def ready(self) -> None:
        from gcai.dbid import DatabaseIdConverter

        # Every app's URL patterns take ids as <id:...>; URL modules are imported
        # after the apps are ready, so the converter exists by then.
        register_converter(DatabaseIdConverter, "id")
