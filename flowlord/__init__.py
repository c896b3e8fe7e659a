"""flowlord: the taskmaster, its configuration and the `flowlord` command."""
