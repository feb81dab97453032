from arms_ledger.cli.main import cli

cli()
