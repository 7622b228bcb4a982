"""Files handed to people: retention target lists (pure Python, no Dagster imports).

`csv_safe` writes Excel-safe CSV cells; `lists` writes a night's lists atomically and reads
them back for the portal.
"""

from dagster_project.exports.lists import (
    LIST_COLUMNS,
    ListIntegrityError,
    Manifest,
    TeamList,
    find_list,
    list_manifests,
    make_list_id,
    parse_list_id,
    read_list_file,
    read_list_rows,
    read_manifest,
    write_target_lists,
)

__all__ = [
    "LIST_COLUMNS",
    "ListIntegrityError",
    "Manifest",
    "TeamList",
    "find_list",
    "list_manifests",
    "make_list_id",
    "parse_list_id",
    "read_list_file",
    "read_list_rows",
    "read_manifest",
    "write_target_lists",
]
