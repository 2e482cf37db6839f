/* Helpers shared by the libFuzzer targets: invariant checks that hold in
 * release builds (NDEBUG turns assert off), and a private temporary
 * directory for loaders that take paths. */
#ifndef NA_FUZZ_H
#define NA_FUZZ_H

#include <dirent.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a crash, so that libFuzzer keeps the input. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* The daemon's defaults for limits.max_matches, limits.max_evidence and
 * limits.max_evidence_bytes, for the targets that tag. */
#define FUZZ_MAX_MATCHES 4096
#define FUZZ_MAX_EVIDENCE 3
#define FUZZ_MAX_EVIDENCE_BYTES 512

#ifdef NA_SOURCE_DIR
/* The shipped configuration's rules directory and actors file, or those in
 * $NA_FUZZ_CONFIG_DIR (rules/ and actors.yaml) when it is set; returns the
 * directory. */
static inline const char *fuzz_config_paths(char rules[PATH_MAX], char actors[PATH_MAX])
{
    const char *dir = getenv("NA_FUZZ_CONFIG_DIR");
    if (dir == NULL || *dir == '\0')
        dir = NA_SOURCE_DIR "/config";
    snprintf(rules, PATH_MAX, "%s/rules", dir);
    snprintf(actors, PATH_MAX, "%s/actors.yaml", dir);
    return dir;
}
#endif

/* The process's temporary directory, once created. */
static inline char *fuzz_tmp_path(void)
{
    static char path[PATH_MAX];
    return path;
}

static inline void fuzz_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[PATH_MAX];
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            fuzz_rm_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static inline void fuzz_tmp_cleanup(void)
{
    if (fuzz_tmp_path()[0])
        fuzz_rm_tree(fuzz_tmp_path());
}

/* Creates the process's temporary directory once and returns it; it is
 * removed at exit. It goes under $TMPDIR when that is set, else on tmpfs
 * (/dev/shm), since a target that writes files runs thousands of times a
 * second; /tmp when neither will do. */
static inline const char *fuzz_tmpdir(void)
{
    char *fuzz_tmp = fuzz_tmp_path();
    if (fuzz_tmp[0])
        return fuzz_tmp;
    const char *env = getenv("TMPDIR");
    const char *bases[] = {env && *env ? env : "/dev/shm", "/tmp"};
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        snprintf(fuzz_tmp, PATH_MAX, "%s/na-fuzz-XXXXXX", bases[i]);
        if (mkdtemp(fuzz_tmp) != NULL) {
            atexit(fuzz_tmp_cleanup);
            return fuzz_tmp;
        }
    }
    perror(fuzz_tmp);
    abort();
}

/* Writes data to dir/name (replacing it) and returns the path in out. */
static inline void fuzz_write(const char *dir, const char *name, const void *data,
                              size_t size, char *out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    if (out)
        strcpy(out, path);
}

#endif
