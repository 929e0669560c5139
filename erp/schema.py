"""Every model module, imported once, so Base.metadata knows every table (Alembic, tests)."""

from erp import change_control, master_data, models, numbering, quality, recall, supply  # noqa: F401
from erp.models import Base

metadata = Base.metadata
