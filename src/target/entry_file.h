/* Reading word lists and lexicons: one entry per line, errors as "file:line: why". */
#ifndef KLC_TARGET_ENTRY_FILE_H
#define KLC_TARGET_ENTRY_FILE_H

#include "target/phrases.h"

/* Adds every entry of the file at path to ph. with_values: a line may be
 * "entry<TAB>value" (a line without a TAB gets default_value); otherwise a TAB is an
 * error. */
int klc_entry_file_read(klc_phrases *ph, const char *path, bool with_values, double default_value);

/* The file's base name, for default feature names. */
const char *klc_base_name(const char *path);

#endif
