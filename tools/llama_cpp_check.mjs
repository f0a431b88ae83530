// Load a GGUF in llama.cpp (through node-llama-cpp's prebuilt CPU binary) and report what it reads:
// metadata, tokenization and greedy continuations. Driven by tools/llama_cpp_check.py.
//   node tools/llama_cpp_check.mjs NODE_LLAMA_CPP_DIR FILE.gguf PROMPTS.json NEW_TOKENS
import {readFileSync} from "node:fs";
import {join} from "node:path";
import {pathToFileURL} from "node:url";

const [moduleDir, modelPath, promptsPath, newTokens] = process.argv.slice(2);
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(join(moduleDir, "dist", "index.js")).href);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 1024, sequences: 1, threads: 1});
const results = [];
for (const prompt of JSON.parse(readFileSync(promptsPath, "utf8"))) {
    const ids = model.tokenize(prompt, true);  // special tokens (<|im_start|>...) parsed as such
    const sequence = context.getSequence();
    const generated = [];
    for await (const token of sequence.evaluate(ids, {temperature: 0})) {
        if (model.isEogToken(token)) break;
        generated.push(token);
        if (generated.length >= Number(newTokens)) break;
    }
    await sequence.clearHistory();
    sequence.dispose();
    results.push({ids, generated, text: model.detokenize(generated)});
}
const meta = model.fileInfo.metadata;
console.log(JSON.stringify({
    architecture: meta.general.architecture, trainContextSize: model.trainContextSize,
    tokens: model.tokens.bos === undefined ? null : {bos: model.tokens.bos, eos: model.tokens.eos},
    chatTemplate: (meta.tokenizer?.chat_template ?? "").length, results,
}));
await context.dispose();
await model.dispose();
