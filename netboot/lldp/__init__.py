"""netboot.lldp"""
