"""netboot.provisioning"""
