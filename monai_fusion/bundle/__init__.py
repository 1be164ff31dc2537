"""The bundle's command-line glue (surface code): ``python -m monai.bundle`` argv, override checks, one-line errors."""

from .cli import (
    bundle_root_from_cli,
    check_cli_overrides,
    check_training_settings,
    install_input_error_hook,
    parse_bundle_argv,
)

__all__ = [
    "bundle_root_from_cli",
    "check_cli_overrides",
    "check_training_settings",
    "install_input_error_hook",
    "parse_bundle_argv",
]
