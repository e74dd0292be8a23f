"""Alembic environment: the engine comes from the caller (nurture.store.migrate)."""

from alembic import context

from nurture.store.tables import metadata

engine = context.config.attributes.get("engine")
if engine is None:  # `alembic` run by hand: take the URL from Nurture's settings
    from nurture.settings import get_settings
    from nurture.store.store import create_db_engine

    engine = create_db_engine(get_settings().resolved_database_url)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
