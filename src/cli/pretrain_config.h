/* The configuration of `klc pretrain`. */
#ifndef KLC_CLI_PRETRAIN_CONFIG_H
#define KLC_CLI_PRETRAIN_CONFIG_H

#include "cli/config.h"
#include "cli/pretrain.h"

/* Reads every key of a pretrain configuration into s (defaults from
 * pretrain_settings_init; file lists belong to the configuration). Returns 0, or -1 with
 * cfg_error(c). */
int pretrain_settings_read(cfg *c, pretrain_settings *s);

#endif
