/* The klc program's subcommands; each takes the arguments after its name and returns the
 * process exit status (0 success, 1 failure, 2 usage error); argv[0] is the subcommand's
 * name. */
#ifndef KLC_CLI_COMMANDS_H
#define KLC_CLI_COMMANDS_H

int klc_cmd_logprob(int argc, char **argv);
int klc_cmd_plot(int argc, char **argv);
int klc_cmd_tokenizer(int argc, char **argv);
int klc_cmd_train(int argc, char **argv);
int klc_cmd_eval(int argc, char **argv);
int klc_cmd_fit_target(int argc, char **argv);
int klc_cmd_sample(int argc, char **argv);
int klc_cmd_pretrain(int argc, char **argv);

#endif
