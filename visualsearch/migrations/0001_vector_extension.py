from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector must exist before any vector column; on a managed PostgreSQL the
    migrating role needs the right to CREATE EXTENSION (or an admin runs it once)."""

    initial = True
    dependencies = []
    operations = [VectorExtension()]
