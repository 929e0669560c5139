"""The ERP database: models, migrations, queries and the audit trail."""
