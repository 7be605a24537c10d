/* The klc program's subcommands: each takes the arguments after its name (argv[0] is the
 * subcommand's name) and returns the process exit status. */
#ifndef KLC_CLI_COMMANDS_H
#define KLC_CLI_COMMANDS_H

int klc_cmd_tokenizer(int argc, char **argv);

#endif
