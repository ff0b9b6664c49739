"""netboot.dhcp"""
