from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = "Accounts and single sign-on"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401  (registers the system checks)
        from accounts.providers.registry import connect_signals

        connect_signals()


class SSOAdminConfig(admin_apps.AdminConfig):
    """The admin, with sign-in through the provider (``accounts.views.admin_site``)."""

    default = False  # "accounts" alone still means AccountsConfig
    default_site = "accounts.views.admin_site.SSOAdminSite"
