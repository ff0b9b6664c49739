from netboot.cli import entry

entry()
