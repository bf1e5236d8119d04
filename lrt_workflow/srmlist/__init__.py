"""srm lists: one archive URL per line, all from one observation at one site. Pure logic.

Reading and validating a list (`read_srm_file`, `parse_lines`: every problem
reported at once, with its line number), converting its links between the
URL forms grid tools want (`Link`: srm, gsiftp, http download, gfal), and
cutting it into chunks of subbands, one chunk per job token (`chunk`).

* `links`: one link, the archive sites and the URL forms;
* `parse`: a whole list;
* `chunks`: chunks, holes and a list's summary.

The classic GRID_LRT names, `srmlist` (alias `SrmList`) and `slice_dicts`,
live in `lrt_workflow.classic.srmlist` and are importable from here as before.
"""

from lrt_workflow.srmlist.chunks import (
    Chunk,
    chunk,
    chunk_name,
    chunk_plan,
    format_ranges,
    missing_ranges,
    missing_subbands,
    plan_chunks,
    summarise,
)
from lrt_workflow.srmlist.links import (
    DEFAULT_PATTERN,
    FORMS,
    SITES,
    Link,
    Site,
    SrmListError,
    SubbandPattern,
    find_obsid,
    normalise_url,
    parse_link,
)
from lrt_workflow.srmlist.parse import MAX_FILE_BYTES, ParsedList, parse_lines, read_srm_file, read_text_file, split_lines
from lrt_workflow.classic.srmlist import SrmList, slice_dicts, srmlist  # noqa: E402 - after the rules it wraps

__all__ = [
    "SrmListError", "Site", "SITES", "FORMS", "SubbandPattern", "DEFAULT_PATTERN", "Link", "ParsedList", "Chunk",
    "MAX_FILE_BYTES", "find_obsid", "normalise_url", "parse_link", "parse_lines", "read_srm_file", "read_text_file",
    "split_lines", "chunk", "chunk_name", "chunk_plan", "plan_chunks", "missing_ranges", "missing_subbands", "format_ranges",
    "summarise", "srmlist", "SrmList", "slice_dicts",
]
