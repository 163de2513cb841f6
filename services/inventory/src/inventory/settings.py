from pydantic_settings import SettingsConfigDict

from servicekit.settings import DatabaseSettings


class InventorySettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="INVENTORY_", extra="ignore")

    service_name: str = "inventory"
