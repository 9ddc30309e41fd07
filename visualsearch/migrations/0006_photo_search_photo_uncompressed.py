"""Kept photos are JPEGs: PostgreSQL's TOAST compression (pglz) tried to compress each one
on insert and gave up (a JPEG does not compress), 0.4-0.5 ms of a photo search's ~2.2 ms row
write (42 kB photo, median of 200 inserts, 2.2 -> 1.75 ms; a whole photo search in process,
80 requests alternated three times, 29.7 / 30.2 / 28.8 -> 29.7 / 29.7 / 28.3 ms, within the
noise). EXTERNAL keeps the photo out of line, uncompressed. Only new rows are affected;
nothing is rewritten."""

from django.db import migrations

TABLE = "visualsearch_photosearch"


class Migration(migrations.Migration):
    dependencies = [("visualsearch", "0005_photo_search")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE {TABLE} ALTER COLUMN photo SET STORAGE EXTERNAL",
            reverse_sql=f"ALTER TABLE {TABLE} ALTER COLUMN photo SET STORAGE EXTENDED",
        ),
    ]
