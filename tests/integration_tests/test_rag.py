"""A whole RAG pipeline against the offline gateway: split, embed, retrieve, answer.

The offline gateway's embeddings put texts that share words close together, so
retrieval is real: the test checks which chunks came back, and that exactly
their text (and no other chunk's) reached the chat model.
"""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.embeddings import HolySheepEmbeddings
from langchain_holysheep.testing import Reply

KEY = "cr_rag_test_key_123456"
CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"

CORPUS = {
    "sheep.md": (
        "Merino sheep grow fine wool. A single Merino sheep can grow about eight "
        "kilograms of wool each year.\n\n"
        "Shearing happens once a year, in spring, before the summer heat. A "
        "skilled shearer clips a sheep in under three minutes."
    ),
    "volcano.md": (
        "Volcanoes erupt when magma rises through the crust and gas pressure "
        "builds.\n\n"
        "Basalt lava flows are runny and travel far, while rhyolite magma is "
        "sticky and explosive."
    ),
    "python.md": (
        "The Python global interpreter lock lets only one thread execute "
        "bytecode at a time.\n\n"
        "Asyncio and multiprocessing work around the lock for concurrent "
        "programs."
    ),
    "tea.md": (
        "Green tea is steamed or pan-fired soon after picking, which stops "
        "oxidation.\n\n"
        "Black tea is fully oxidised before drying, giving a darker cup."
    ),
}
QUESTION = "How much wool does a Merino sheep grow each year?"
ANSWER = "About eight kilograms of wool a year."
PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from this context only.\n\nContext:\n{context}"),
        ("human", "{question}"),
    ]
)


def answer_from_context(body):
    """Answer like a grounded model: only if the fact reached the prompt."""
    system = body["messages"][0]["content"]
    return Reply(content=ANSWER if "eight kilograms" in system else "I don't know.")


@pytest.fixture
def gw(holysheep_gateway):
    holysheep_gateway.set_responder(answer_from_context)
    return holysheep_gateway


def split_corpus():
    splitter = RecursiveCharacterTextSplitter(chunk_size=120, chunk_overlap=0)
    documents = [Document(text, metadata={"source": s}) for s, text in CORPUS.items()]
    chunks = splitter.split_documents(documents)
    assert len(chunks) > len(documents)  # the splitter really split
    return chunks


def format_docs(docs):
    return "\n\n".join(doc.page_content for doc in docs)


def build_chain(retriever, llm):
    answer = (
        RunnablePassthrough.assign(context=lambda x: format_docs(x["docs"]))
        | PROMPT
        | llm
        | StrOutputParser()
    )
    return RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(
        answer=answer
    )


def models(gw):
    embeddings = HolySheepEmbeddings(
        base_url=gw.base_url, api_key=KEY, chunk_size=3, max_retries=0
    )
    llm = ChatHolySheep(base_url=gw.base_url, api_key=KEY, max_retries=0)
    return embeddings, llm


def check_run(gw, chunks, result):
    # The right documents were retrieved: both sheep chunks, the fact first.
    retrieved = result["docs"]
    assert [d.metadata["source"] for d in retrieved] == ["sheep.md", "sheep.md"]
    assert "eight kilograms" in retrieved[0].page_content
    assert result["answer"] == ANSWER

    # Every chunk was embedded, in requests of chunk_size, then the question.
    embedded = [r.body["input"] for r in gw.requests if r.path == EMBEDDINGS_PATH]
    texts = [c.page_content for c in chunks]
    assert sorted(t for batch in embedded[:-1] for t in batch) == sorted(texts)
    assert all(len(batch) <= 3 for batch in embedded)
    assert embedded[-1] == [QUESTION]

    # Exactly the retrieved text reached the model, and nothing else from the store.
    (chat,) = [r for r in gw.requests if r.path == CHAT_PATH]
    system, human = chat.body["messages"]
    assert human == {"role": "user", "content": QUESTION}
    for doc in retrieved:
        assert doc.page_content in system["content"]
    for chunk in chunks:
        if chunk.metadata["source"] != "sheep.md":
            assert chunk.page_content not in system["content"]


def test_rag_pipeline_sync(gw):
    chunks = split_corpus()
    embeddings, llm = models(gw)
    store = InMemoryVectorStore.from_documents(chunks, embeddings)
    retriever = store.as_retriever(search_kwargs={"k": 2})
    result = build_chain(retriever, llm).invoke(QUESTION)
    check_run(gw, chunks, result)


async def test_rag_pipeline_async(gw):
    chunks = split_corpus()
    embeddings, llm = models(gw)
    store = await InMemoryVectorStore.afrom_documents(chunks, embeddings)
    retriever = store.as_retriever(search_kwargs={"k": 2})
    result = await build_chain(retriever, llm).ainvoke(QUESTION)
    check_run(gw, chunks, result)


def test_rag_without_the_fact_in_context_does_not_answer(gw):
    """Control: the scripted model only answers when retrieval delivered the fact."""
    chunks = [c for c in split_corpus() if "eight kilograms" not in c.page_content]
    embeddings, llm = models(gw)
    store = InMemoryVectorStore.from_documents(chunks, embeddings)
    result = build_chain(store.as_retriever(search_kwargs={"k": 2}), llm).invoke(
        QUESTION
    )
    assert result["answer"] == "I don't know."
