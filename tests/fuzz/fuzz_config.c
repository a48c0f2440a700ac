/* libFuzzer target: the config file (--config), from any bytes. It must
 * either be taken, and then print back as YAML and free cleanly, or be
 * refused with one line that names the file; never crash, hang or leak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/options.h"

static int fd = -1;
static char path[64];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfd_create("sonde-fuzz-config", 0);
	devnull = fopen("/dev/null", "w");
	if (fd < 0 || !devnull) {
		perror("fuzz_config");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[] = { "sonde", "--config", path, NULL };
	struct sonde_options o;
	char err[512] = "";

	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	enum options_result r = options_parse(3, argv, &o, err, sizeof(err));

	/* FUZZ_PRINT=1: what became of the input. */
	if (getenv("FUZZ_PRINT"))
		fprintf(stderr, "fuzz_config: %s %s\n",
			r == OPTIONS_RUN ? "taken" : "refused", err);
	switch (r) {
	case OPTIONS_RUN:
		options_print_yaml(&o, devnull);
		break;
	case OPTIONS_ERROR:
		if (!err[0] || strchr(err, '\n') || !strstr(err, path)) {
			fprintf(stderr,
				"fuzz_config: a refusal must be one "
				"line naming the file, got \"%s\"\n",
				err);
			abort();
		}
		break;
	case OPTIONS_EXIT:
		fprintf(stderr, "fuzz_config: a config file asked to exit\n");
		abort();
	}
	options_free(&o);
	return 0;
}
