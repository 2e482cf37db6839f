/* libFuzzer target: newsalertd's config loader (daemon/config.c) on
 * arbitrary text. A config that loads must hold values within the ranges
 * of the option table; one that does not must say why. */
#include "fuzz.h"
#include "newsalertd.h"

static char path[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof(path), "%s/newsalertd.yaml", fuzz_tmpdir());
    /* Loading logs nothing on success; keep the fuzzer's output clean. */
    na_log_init(NA_LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct na_error err = {{0}};
    char *slash = strrchr(path, '/');

    fuzz_write(fuzz_tmpdir(), slash + 1, data, size, NULL);
    struct na_config *cfg = na_config_load(path, &err);
    if (cfg == NULL) {
        FUZZ_CHECK(err.msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(cfg->feed_endpoints.n > 0);
    for (size_t i = 0; i < cfg->feed_endpoints.n; i++)
        FUZZ_CHECK(cfg->feed_endpoints.items[i] != NULL);
    for (size_t i = 0; i < cfg->feed_topics.n; i++)
        FUZZ_CHECK(cfg->feed_topics.items[i] != NULL);
    FUZZ_CHECK(cfg->publish_endpoint && cfg->rules_dir && cfg->actors_file);
    FUZZ_CHECK(cfg->rules_dir[0] == '/' && cfg->actors_file[0] == '/');
    FUZZ_CHECK(cfg->feed_rcvhwm >= 1 && cfg->batch >= 1);
    FUZZ_CHECK(cfg->max_matches >= 1 && cfg->max_evidence >= 1);
    FUZZ_CHECK(cfg->limits.max_article_bytes >= 256);
    FUZZ_CHECK(cfg->log_level >= NA_LOG_ERROR && cfg->log_level <= NA_LOG_DEBUG);
    na_config_free(cfg);
    return 0;
}
