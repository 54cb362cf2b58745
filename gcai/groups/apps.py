from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "gcai.groups"
    label = "groups"
    verbose_name = "Constitutions per group of people"

    def ready(self) -> None:
        from gcai.constitutions import runs
        from gcai.groups import services

        if services.on_run_finished not in runs.FINISH_HOOKS:
            runs.FINISH_HOOKS.append(services.on_run_finished)
