// cli/: the `glassbox` program end to end on small data: help, bad flags,
// train -> eval, and errors that name the problem with a non-zero exit.
#include <filesystem>

#include "cli_run.h"
#include "temp_dir.h"
#include "idx_writer.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "models/registry.h"

using namespace gb::testing;

TEST_CASE("cli: help and bad flags") {
    const Run help = run("train --help");
    CHECK(help.code == 0);
    CHECK(help.out.find("--epochs") != std::string::npos);
    CHECK(help.out.find("--optimizer") != std::string::npos);
    const Run bogus = run("train --bogus 3");
    CHECK(bogus.code != 0);
    CHECK(bogus.out.find("--bogus") != std::string::npos);
    const Run opt = run("train --optimizer rmsprop");
    CHECK(opt.code != 0);
    CHECK(opt.out.find("rmsprop") != std::string::npos);
    const Run none = run("");
    CHECK(none.code != 0);
    const Run missing = run("eval --checkpoint /nonexistent/model.safetensors");
    CHECK(missing.code != 0);
    CHECK(missing.out.find("/nonexistent/model.safetensors") != std::string::npos);
    const Run cuda = run("train --device cuda:7 --data-dir /nonexistent");
    CHECK(cuda.code != 0);
    CHECK(cuda.out.find("CUDA") != std::string::npos);
    const Run info = run("info");
    CHECK(info.code == 0);
    CHECK(info.out.find("self-check") != std::string::npos);
    CHECK(info.out.find(": OK") != std::string::npos);
}

TEST_CASE("cli: train then eval on a small IDX dataset") {
    TempDir dir("cli");
    write_fake_mnist(dir.path(), 60, 30, 28, true);
    const std::string out = dir.path("run");
    const Run tr = run("train --data-dir " + dir.path() + " --epochs 2 --batch-size 20 --lr 0.02 --threads 1 --out " + out);
    INFO(tr.out);
    REQUIRE(tr.code == 0);
    CHECK(tr.out.find("epoch 2: train loss") != std::string::npos);
    CHECK(std::filesystem::exists(out + "/model.safetensors"));
    CHECK(std::filesystem::exists(out + "/resume.safetensors"));
    CHECK(std::filesystem::exists(out + "/metrics.csv"));
    const Run ev = run("eval --checkpoint " + out + "/model.safetensors --data-dir " + dir.path());
    INFO(ev.out);
    REQUIRE(ev.code == 0);
    CHECK(ev.out.find("accuracy: ") != std::string::npos);
    CHECK(ev.out.find("30 images") != std::string::npos);
    CHECK(ev.out.find("| Ankle boot |") != std::string::npos);

    // explain: dataset samples and an image file of another size and colour, several methods.
    std::vector<uint8_t> rgb(40 * 40 * 3, 90);
    gb::io::save_png(dir.path("shirt.png"), rgb.data(), 40, 40, 3);
    const std::string ex = dir.path("explain");
    const Run e1 = run("explain --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --index 0 3 --method lrp:epsilon-plus-flat --method gradcam --method ig:steps=4 --out " + ex);
    INFO(e1.out);
    REQUIRE(e1.code == 0);
    CHECK(e1.out.find("report: " + ex + "/report.html") != std::string::npos);
    for (const char* f : {"report.html", "input_0.png", "1_lrp_epsilon-plus-flat.png", "0_gradcam_overlay.png"})
        CHECK(std::filesystem::exists(ex + "/" + f));
    const gb::Tensor relevance = gb::io::load_npy(ex + "/lrp_epsilon-plus-flat.npy");
    CHECK(relevance.shape() == gb::Shape{2, 1, 28, 28});
    const Run e2 = run("explain --checkpoint " + out + "/model.safetensors --image " + dir.path("shirt.png") +
                       " --method saliency --target 3 --out " + ex);
    INFO(e2.out);
    REQUIRE(e2.code == 0);
    CHECK(e2.out.find("converted to grey") != std::string::npos);
    CHECK(e2.out.find("resized to 28x28") != std::string::npos);
    const Run e3 = run("explain --checkpoint " + out + "/model.safetensors --index 0 --data-dir " + dir.path() +
                       " --method occlude --out " + ex);
    CHECK(e3.code != 0);
    CHECK(e3.out.find("unknown method 'occlude'") != std::string::npos);
    const Run e5 = run("explain --checkpoint " + out + "/model.safetensors --index 0 --data-dir " + dir.path() +
                       " --method occlusion:window=2 --method random --out " + ex);
    INFO(e5.out);
    CHECK(e5.code == 0);
    CHECK(std::filesystem::exists(ex + "/0_occlusion_window_2.png"));
    const Run e4 = run("explain --checkpoint " + out + "/model.safetensors --index 99 --data-dir " + dir.path() +
                       " --method saliency --out " + ex);
    CHECK(e4.code != 0);
    CHECK(e4.out.find("--index 99 is outside the 30 test images") != std::string::npos);
    // A plain PyTorch state dict of vgg-mini (no glassbox metadata) fits torchvision's layout too (its 7x7
    // adaptive pool): explain, evaluate and intervene build it for the dataset's 1x28x28 images, as eval does.
    const std::string plain = data_file("vgg_mini.model.safetensors");
    const Run p1 = run("explain --checkpoint " + plain + " --index 0 --data-dir " + dir.path() +
                       " --method saliency --out " + ex);
    INFO(p1.out);
    CHECK(p1.code == 0);
    CHECK(gb::io::load_npy(ex + "/saliency.npy").shape() == gb::Shape{1, 1, 28, 28});
    const Run p2 = run("evaluate --checkpoint " + plain + " --data-dir " + dir.path() +
                       " --limit 2 --method saliency --metric deletion --out " + dir.path("plain_eval"));
    INFO(p2.out);
    CHECK(p2.code == 0);
    const Run p3 = run("intervene --checkpoint " + plain + " --data-dir " + dir.path() +
                       " --layer features.7 --channels 0 --limit 4 --value zero --out " + dir.path("plain_do"));
    INFO(p3.out);
    CHECK(p3.code == 0);
    const Run p4 = run("counterfactual --checkpoint " + plain + " --data-dir " + dir.path() +
                       " --index 0 --steps 2 --threads 1 --out " + dir.path("plain_cf") + " --target 2");
    INFO(p4.out);  // (the model predicts class 1 for this sample)
    CHECK(p4.code == 0);
    CHECK(std::filesystem::exists(dir.path("plain_cf") + "/report.html"));
    const Run list = run("explain --list");
    CHECK(list.code == 0);
    CHECK(list.out.find("lrp:epsilon-gamma-box") != std::string::npos);
    const Run table = run("explain --list --format markdown");  // the method table of docs/explain.md
    CHECK(table.code == 0);
    CHECK(table.out.find("| `gradcam++`, `gradcampp` | cam |") != std::string::npos);

    // evaluate: every metric on a few images, the files it writes, and clear errors.
    const std::string evd = dir.path("evaluate");
    const Run v1 = run("evaluate --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --limit 6 --batch-size 4 --method saliency --method random --metric aopc --metric deletion"
                       " --metric insertion --metric randomisation --metric sensitivity --metric conservation --replacement noise --replacement black"
                       " --steps 4 --aopc-steps 4 --sensitivity-samples 2 --threads 1 --out " + evd);
    INFO(v1.out);
    REQUIRE(v1.code == 0);
    CHECK(v1.out.find("| saliency |") != std::string::npos);
    CHECK(v1.out.find("up to features.0") != std::string::npos);
    for (const char* f : {"results.csv", "results.md", "curves.csv", "report.html", "aopc-noise_curves.svg", "aopc-black_curves.svg", "deletion_curves.svg",
                          "insertion_curves.svg", "randomisation.svg"})
        CHECK(std::filesystem::exists(evd + "/" + f));
    const Run v2 = run("evaluate --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --limit 99 --method saliency --out " + evd);
    CHECK(v2.code != 0);
    CHECK(v2.out.find("--limit 99 exceeds the 30 test images") != std::string::npos);
    // evaluate's old spellings (--samples, --batch) still work through the shared blocks, with the note.
    const Run v2_old = run("evaluate --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                           " --samples 99 --batch 4 --method saliency --out " + evd);
    CHECK(v2_old.code != 0);
    CHECK(v2_old.out.find("glassbox: note: --samples is deprecated; use --limit\n") != std::string::npos);
    CHECK(v2_old.out.find("glassbox: note: --batch is deprecated; use --batch-size\n") != std::string::npos);
    CHECK(v2_old.out.find("--limit 99 exceeds the 30 test images") != std::string::npos);
    const Run v3 = run("evaluate --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --limit 2 --method saliency --metric faithfulness --out " + evd);
    CHECK(v3.code != 0);
    CHECK(v3.out.find("faithfulness") != std::string::npos);

    // visualize: activation maximisation per class as a grid, channel importance, clear errors.
    const std::string vis = dir.path("visualize");
    const Run z1 = run("visualize --checkpoint " + out + "/model.safetensors --class 0 --class 9 --steps 3 --importance 8 --data-dir " +
                       dir.path() + " --threads 1 --out " + vis);
    INFO(z1.out);
    REQUIRE(z1.code == 0);
    CHECK(z1.out.find("Ankle boot") != std::string::npos);
    CHECK(z1.out.find("features.0") != std::string::npos);
    CHECK(std::filesystem::exists(vis + "/activation_maximisation.png"));
    CHECK(gb::io::load_npy(vis + "/activation_maximisation.npy").shape() == gb::Shape{2, 1, 28, 28});
    CHECK(std::filesystem::exists(vis + "/channel_importance.csv"));
    CHECK(std::filesystem::exists(vis + "/report.html"));  // its structure: tests/pytest/test_reports.py
    // Progress on stderr: each objective's value every tenth of the steps (here every step) and at the end.
    CHECK(z1.out.find("visualize: step 0/3 objective") != std::string::npos);
    CHECK(z1.out.find("visualize: step 3/3 objective") != std::string::npos);
    // A device that is absent is a clear error, and the output folder is not left behind.
    const Run z4 = run("visualize --checkpoint " + out + "/model.safetensors --class 0 --steps 1 --device cuda:7 --out " +
                       dir.path("visualize-cuda"));
    CHECK(z4.code != 0);
    CHECK(z4.out.find("CUDA") != std::string::npos);
    CHECK(!std::filesystem::exists(dir.path("visualize-cuda")));
    const Run z2 = run("visualize --checkpoint " + out + "/model.safetensors --class 12 --out " + vis);
    CHECK(z2.code != 0);
    CHECK(z2.out.find("--class 12 is outside the model's 10 classes") != std::string::npos);
    const Run z3 = run("visualize --checkpoint " + out + "/model.safetensors --layer features.0 --out " + vis);
    CHECK(z3.code != 0);
    CHECK(z3.out.find("--layer and --channel go together") != std::string::npos);

    // counterfactual: a dataset sample towards another class, with the prototype term; its files; the prediction
    // itself refused. The class the model predicts for sample 0 is read from a first run's output.
    const std::string cfd = dir.path("counterfactual");
    const std::string cf_args = "counterfactual --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                                " --index 0 --steps 20 --lr 0.2 --prototype-weight 0.1 --threads 1 --out " + cfd + " --target ";
    Run c1 = run(cf_args + "0");
    std::string pred = "0";
    if (c1.code != 0) {
        CHECK(c1.out.find("is the model's prediction already") != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(cfd));
        c1 = run(cf_args + "1");
    } else {
        pred = c1.out.substr(c1.out.find("counterfactual: class ") + 22, 1);
        const Run same = run(cf_args + pred);
        CHECK(same.code == 1);
        CHECK(same.out.find("is the model's prediction already") != std::string::npos);
    }
    INFO(c1.out);
    REQUIRE(c1.code == 0);
    CHECK(c1.out.find("counterfactual: step 0/20: p(target) ") != std::string::npos);
    CHECK(c1.out.find("nearest fashion-mnist train image of class") != std::string::npos);
    for (const char* f : {"report.html", "counterfactual.npy", "difference.npy", "probabilities.npy", "probability_path.svg", "run.json"})
        CHECK(std::filesystem::exists(cfd + "/" + f));
    const gb::Tensor path = gb::io::load_npy(cfd + "/probabilities.npy");
    CHECK(path.rank() == 2);
    CHECK(path.dim(1) == 10);
    CHECK(gb::io::load_npy(cfd + "/counterfactual.npy").shape() == gb::Shape{1, 1, 28, 28});
    const std::string html = read_text(cfd + "/report.html");
    CHECK(html.find("<svg") != std::string::npos);
    CHECK(html.find("prototype: fashion-mnist train #") != std::string::npos);
    CHECK(html.find("distance weight lambda") != std::string::npos);

    // intervene: every channel of features.5 zeroed in turn over 12 test images; its files and agreement table.
    const std::string ivd = dir.path("intervene");
    const Run i1 = run("intervene --checkpoint " + out + "/model.safetensors --data-dir " + dir.path() +
                       " --layer features.5 --limit 12 --value mean --reference 20 --k 1 --k 4 --threads 1 --out " + ivd);
    INFO(i1.out);
    REQUIRE(i1.code == 0);
    CHECK(i1.out.find("intervene: reference set: the first 20 fashion-mnist train images") != std::string::npos);
    CHECK(i1.out.find("intervened passes") != std::string::npos);
    CHECK(i1.out.find("gradient x activation  Spearman") != std::string::npos);
    for (const char* f : {"report.html", "channels.csv", "ablation.csv", "ablation.svg", "effect_logits.npy", "effect_probabilities.npy", "run.json"})
        CHECK(std::filesystem::exists(ivd + "/" + f));
    CHECK(gb::io::load_npy(ivd + "/effect_logits.npy").shape() == gb::Shape{64, 10});
    CHECK(read_text(ivd + "/ablation.csv").rfind("k,accuracy_causal,kept_causal,", 0) == 0);

    const Run again = run("train --data-dir " + dir.path() + " --epochs 2 --out " + out + " --resume " + out +
                          "/resume.safetensors");
    CHECK(again.code != 0);
    CHECK(again.out.find("already finished 2 epochs") != std::string::npos);
    const Run wrong = run("train --data-dir " + dir.path() + " --model vgg11 --epochs 3 --out " + out + " --resume " +
                          out + "/resume.safetensors");
    CHECK(wrong.code != 0);
    CHECK(wrong.out.find("continues a 'vgg-mini' run") != std::string::npos);
}

TEST_CASE("cli: a plain torchvision-layout state dict (no metadata) loads without --model") {
    TempDir dir("cli-tv");
    write_fake_mnist(dir.path(), 10, 6, 28, true);
    // torchvision's layout, narrow: conv-bn-relu-pool x2, AdaptiveAvgPool2d((7, 7)), classifier 16-12-10.
    gb::models::VggConfig c = gb::models::model_config("vgg11-bn", {1, 28, 10});
    c.features = {4, 0, 8, 0};
    c.hidden = {16, 12};
    gb::Generator g(3);
    gb::models::Vgg m(c, g);
    auto state = m.state();
    state.emplace_back("features.1.num_batches_tracked", gb::from_vector(std::vector<int32_t>{3}, gb::Shape{}));
    const std::string path = dir.path("plain.safetensors");
    gb::io::save_safetensors(path, state);
    const Run ev = run("eval --checkpoint " + path + " --data-dir " + dir.path() + " --threads 1");
    INFO(ev.out);
    REQUIRE(ev.code == 0);
    CHECK(ev.out.find("vgg-custom") != std::string::npos);
    CHECK(ev.out.find("6 images") != std::string::npos);
    const Run named = run("eval --checkpoint " + path + " --model vgg-mini-bn --data-dir " + dir.path());
    CHECK(named.code != 0);
    CHECK(named.out.find("does not fit the model") != std::string::npos);
    const Run info = run("info");
    CHECK(info.out.find("vgg16-bn") != std::string::npos);
    CHECK(info.out.find("vgg11-bn-small") != std::string::npos);
}

TEST_CASE("cli: an old option spelling works and notes the new one on stderr; the new spelling is silent") {
    TempDir dir("cli_alias");
    write_fake_mnist(dir.path(), 16, 8, 8, false);
    const std::string train = "train --data-dir " + dir.path() + " --epochs 1 --threads 1 --seed 5 ";
    const Run old = run(train + "--batch 8 --out " + dir.path("old"));
    INFO(old.out);
    REQUIRE(old.code == 0);
    CHECK(old.out.find("glassbox: note: --batch is deprecated; use --batch-size\n") != std::string::npos);
    const Run now = run(train + "--batch-size 8 --out " + dir.path("new"));
    INFO(now.out);
    REQUIRE(now.code == 0);
    CHECK(now.out.find("deprecated") == std::string::npos);
    // The same run: --batch 8 was --batch-size 8.
    CHECK(read_text(dir.path("old/model.safetensors")) == read_text(dir.path("new/model.safetensors")));

    const std::string eval = "eval --checkpoint " + dir.path("new/model.safetensors") + " --data-dir " + dir.path();
    const Run samples = run(eval + " --samples 5");
    INFO(samples.out);
    CHECK(samples.code == 0);
    CHECK(samples.out.find("glassbox: note: --samples is deprecated; use --limit\n") != std::string::npos);
    CHECK(samples.out.find("5 images") != std::string::npos);
    const Run limit = run(eval + " --limit 5 --batch-size 2");
    CHECK(limit.code == 0);
    CHECK(limit.out.find("5 images") != std::string::npos);
    CHECK(limit.out.find("deprecated") == std::string::npos);
    // The old spelling is checked as the new one is, under its own name; both at once is a usage error.
    const Run zero = run(eval + " --batch 0");
    CHECK(zero.code == 2);
    CHECK(zero.out.find("--batch: 0 is out of range (expected an integer in [1, 65536])") != std::string::npos);
    const Run both = run(eval + " --limit 5 --samples 5");
    CHECK(both.code == 2);
    CHECK(both.out.find("excludes") != std::string::npos);
    // --help lists the new names, and the old ones only under "Deprecated".
    const Run help = run("eval --help");
    CHECK(help.out.find("--batch-size") != std::string::npos);
    CHECK(help.out.find("Deprecated") != std::string::npos);
}
