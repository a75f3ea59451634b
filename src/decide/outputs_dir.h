/* outputs_dir.h — the output files on disk across a server's crashes and
 * restarts (DATA/outputs): cut back to a checkpoint, set aside while a
 * replay of the whole log rebuilds them, put back or retired, synced for a
 * checkpoint. outputs.h writes the files; this is what recovery does to
 * them (weir run: serve/runtime.c).
 *
 * OUTPUTS ACROSS CRASHES. The output files (aggregates on close, late
 * events, pattern matches, emits) are a function of the log, like the
 * decision log, but they are buffered in stdio and a crash takes the
 * buffer. So a checkpoint flushes them and records where every file of the
 * directory ended ("name size" lines, outputs_ends); recovery cuts each
 * file back to that size (to empty if the checkpoint does not list it:
 * created since, by a reload) and replays with the outputs on, writing
 * again exactly what came after the checkpoint — each record once. That
 * includes the emits of a decision whose emit a reload has removed since
 * (written by name: EMITS FROM THE DECISION LOG, runtime.c). Without a
 * checkpoint the files are cut to empty and rebuilt from the whole log
 * (unless retention deleted its start: then they are left as they are and
 * replay writes nothing).
 *
 * Messages go to stderr as "weir run: recovery: ...". */
#ifndef WEIR_DECIDE_OUTPUTS_DIR_H
#define WEIR_DECIDE_OUTPUTS_DIR_H

#include <stddef.h>

#include "base/buf.h"
#include "decide/outputs.h"

/* Cuts the output files of datadir back: to the sizes in `positions` (a
 * checkpoint's outputs text), or all to empty when positions is NULL.
 *
 * All to empty (a replay of the whole log), a regular file is moved aside
 * to NAME.ndjson.cut and an empty one put in its place, rather than
 * truncated: freeing a gigabyte file's blocks and cached pages took a
 * quarter of a second, on the path of a recovery that then rewrites it.
 * The moved files are the outputs as they were until the replay has
 * rebuilt them: a replay that stops (a crash; an error, such as an event
 * the spec cannot read or a key it does not partition by) leaves them, and
 * the next start puts them back before anything else
 * (outputs_dir_put_back), so a refused start changes no output. A replay
 * that finishes retires them (outputs_dir_retire: renamed NAME.ndjson.old),
 * and outputs_dir_remove_retired deletes those. out's streams move to the
 * new files (outputs_reopen), whose failure fails the recovery. Only then
 * can this fail. */
int outputs_dir_cut(const char *datadir, outputs_t *out, const weir_slice_t *positions, char *err,
                    size_t errlen);

/* Whether an output file is shorter than `positions` (a checkpoint's
 * "name size" lines) says it was at the checkpoint (a missing one is
 * empty): fills why, naming it. */
int outputs_dir_short(const char *datadir, weir_slice_t positions, char *why, size_t whylen);

/* The files a replay of the whole log set aside and did not finish
 * rebuilding, put back (out's streams reopened on them). */
int outputs_dir_put_back(const char *datadir, outputs_t *out, char *err, size_t errlen);
/* The replay finished: what it set aside is not needed any more. */
void outputs_dir_retire(const char *datadir);
/* Deletes what outputs_dir_retire retired (also what a crash left): slow
 * for big files, so the server runs it on a thread of its own. */
void outputs_dir_remove_retired(const char *datadir);

/* fdatasyncs every output file of datadir, by path: a checkpoint records
 * where each ends, and recovery cuts them back there; without this a power
 * loss could leave a file shorter than that, its lines before the
 * checkpoint gone. By path, not through the streams: writers go on
 * appending meanwhile, and an fsync of any descriptor of a file writes its
 * pages. */
int outputs_dir_sync(const char *datadir, char *err, size_t errlen);

#endif
