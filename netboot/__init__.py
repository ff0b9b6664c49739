"""netboot: a phone-provisioning appliance in one process."""

__version__ = "0.1.0"
