ALTER TABLE conversations DROP COLUMN description;
